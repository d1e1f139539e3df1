"""The web chat: `python app.py` opens it at http://127.0.0.1:7860 (see `python app.py --help`)."""

import sys

from qa.web.server import main

if __name__ == "__main__":
    sys.exit(main())
