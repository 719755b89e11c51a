"""What users touch: the ``%%gemini_image`` and ``%aigate`` magics and their parser, and the
panel with its widgets. They translate and display; the rules are below them."""
