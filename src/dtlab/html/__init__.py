"""Self-contained HTML pages: the format explorer and the report of a dtlab result.

Each page is one file with its CSS, JavaScript and data inline: it opens from disk, makes no
network request and names no external URL (its Content-Security-Policy forbids both).
"""

from dtlab.html.explorer import explorer_page
from dtlab.html.report import REPORT_KINDS, read_result, report_file, report_page

__all__ = ["REPORT_KINDS", "explorer_page", "read_result", "report_file", "report_page"]
