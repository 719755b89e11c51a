"""The names and sizes of a history folder's layout, shared by the store and the report:

    <history dir>/<notebook>/index.jsonl        one JSON record a line
    <history dir>/<notebook>/attempts.jsonl     requests charged without a picture
    <history dir>/<notebook>/notebook.json      which notebook owns the folder
    <history dir>/<notebook>/images/            the originals
    <history dir>/<notebook>/thumbs/            the gallery's thumbnails and the report's previews
    <history dir>/<notebook>/batches/           the manifests of batches run from the notebook
"""

INDEX_FILE = "index.jsonl"
#: Requests charged without a picture (a reply blocked for safety that reports usage).
ATTEMPTS_FILE = "attempts.jsonl"
#: Every name the layout puts directly in a history folder.
LAYOUT = (INDEX_FILE, ATTEMPTS_FILE, "notebook.json", "images", "thumbs", "batches")
#: Thumbnail long edge in the gallery.
THUMBNAIL_EDGE = 160
#: Long edge of an entry's preview in the HTML report (report.py): sharp in its grid on a
#: high-density screen, and under half a 1K image's edge, so that Pillow first halves it by
#: averaging (fast), then resamples.
PREVIEW_EDGE = 640
