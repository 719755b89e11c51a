"""The names and sizes of a history folder's layout, shared by the store, its thumbnails and
the report:

    <history dir>/<notebook>/index.jsonl                 one JSON record a line (emptied by a clear)
    <history dir>/<notebook>/attempts.jsonl              requests charged without a picture, likewise
    <history dir>/<notebook>/notebook.json               which notebook owns the folder (notebook.py)
    <history dir>/<notebook>/images/<id>-<k>.<ext>       each image's original bytes, k from 1
    <history dir>/<notebook>/thumbs/<id>.jpg             the gallery's thumbnails
    <history dir>/<notebook>/thumbs/<id>-<k>-<edge>.jpg  the report's larger previews
    <history dir>/<notebook>/batches/batch-<key>.jsonl   the manifests of batches run from the notebook
"""

INDEX_FILE = "index.jsonl"
#: Requests charged without a picture (a reply blocked for safety that reports usage).
ATTEMPTS_FILE = "attempts.jsonl"
#: The folders of what the entries made, emptied with them by ``History.clear()``: the
#: originals, their previews, and the manifests of the batches that made them (runs/batches.py).
ENTRY_FOLDERS = ("images", "thumbs", "batches")
#: Every name the layout puts directly in a history folder.
LAYOUT = (INDEX_FILE, ATTEMPTS_FILE, "notebook.json", *ENTRY_FOLDERS)
#: Thumbnail long edge in the gallery.
THUMBNAIL_EDGE = 160
#: Long edge of an entry's preview in the HTML report (report.py): sharp in its grid on a
#: high-density screen, and under half a 1K image's edge, so that Pillow first halves it by
#: averaging (fast), then resamples.
PREVIEW_EDGE = 640
