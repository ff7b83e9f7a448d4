"""Start the explorer: ``python app.py [--model ID] [--port N] [--host ADDR] [--models DIR ...]
[--auth FILE]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from explorer.api import WEIGHTS_DIR, Explorer
from explorer.auth import Credentials
from explorer.errors import ExplorerError
from explorer.ui.app import LOCALHOST, launch

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--model", default=os.environ.get("EXPLORER_MODEL"), help="default model id")
parser.add_argument("--port", type=int, default=int(os.environ.get("EXPLORER_PORT", 7860)))
parser.add_argument("--host", default=os.environ.get("EXPLORER_HOST", LOCALHOST))
parser.add_argument(
    "--models", nargs="*", default=[], help="extra model folders or folders of them"
)
parser.add_argument(
    "--auth",
    default=os.environ.get("EXPLORER_AUTH_FILE"),
    help="require a login from the users in this file (python -m explorer users add NAME --file "
    "FILE); labels are then attributed to the logged-in user",
)
args = parser.parse_args()
# warnings (e.g. a model folder skipped because its spec.json cannot be read) go to stderr
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
try:
    explorer = Explorer([WEIGHTS_DIR, *args.models], default_model=args.model)
    credentials = Credentials.load(args.auth) if args.auth else None
    # Building the app loads the default model (weights, examples): a bad one ends here too, as
    # does a port already in use (OSError), with one line instead of a traceback.
    launch(explorer, host=args.host, port=args.port, credentials=credentials)
except (ExplorerError, OSError) as error:
    sys.exit(f"error: {error}")
