"""Start the explorer: ``python app.py [--model ID] [--port N] [--host ADDR] [--models DIR ...]``."""

from __future__ import annotations

import argparse
import os
import sys

from explorer.api import WEIGHTS_DIR, Explorer
from explorer.errors import ExplorerError
from explorer.ui.app import LOCALHOST, launch

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--model", default=os.environ.get("EXPLORER_MODEL"), help="default model id")
parser.add_argument("--port", type=int, default=int(os.environ.get("EXPLORER_PORT", 7860)))
parser.add_argument("--host", default=os.environ.get("EXPLORER_HOST", LOCALHOST))
parser.add_argument(
    "--models", nargs="*", default=[], help="extra model folders or folders of them"
)
args = parser.parse_args()
try:
    explorer = Explorer([WEIGHTS_DIR, *args.models], default_model=args.model)
except ExplorerError as error:
    sys.exit(f"error: {error}")
launch(explorer, host=args.host, port=args.port)
