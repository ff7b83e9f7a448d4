"""Start the explorer: ``python app.py [--model ID] [--port N] [--host ADDR] [--models DIR ...]
[--auth FILE] [--device auto|cpu|cuda|cuda:N]``."""

from __future__ import annotations

import gc
import sys
from importlib.abc import MetaPathFinder


class _WithoutIPython(MetaPathFinder):
    """Imports of IPython fail as if it were not installed (it is not in requirements.txt)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "IPython" or name.startswith("IPython."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


# Start-up (bench/startup.py): torch, gradio and their dependencies create some 600,000 long-lived
# objects while they are imported; the garbage collector is paused until they are, then they are
# moved out of its sight (gc.freeze), so later collections walk only what the app creates. Gradio
# imports IPython for its notebook hooks when it can (hundreds of modules); a server needs none.
gc.disable()
sys.meta_path.insert(0, _WithoutIPython())

import argparse  # noqa: E402 (after the start-up settings above)
import logging  # noqa: E402
import os  # noqa: E402

from explorer.api import WEIGHTS_DIR, Explorer  # noqa: E402
from explorer.auth import Credentials  # noqa: E402
from explorer.cache import default_models_dir  # noqa: E402
from explorer.errors import ExplorerError  # noqa: E402
from explorer.ui.app import LOCALHOST, launch  # noqa: E402

gc.freeze()
gc.enable()

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
parser.add_argument(
    "--device",
    default=os.environ.get("EXPLORER_DEVICE", "auto"),
    help="where the networks run: auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or "
    "cuda:N",
)
args = parser.parse_args()
# warnings (e.g. a model folder skipped because its spec.json cannot be read) go to stderr
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
try:
    # the models the app itself made (retrains) are served again after a restart
    explorer = Explorer(
        [WEIGHTS_DIR, default_models_dir(), *args.models],
        default_model=args.model,
        device=args.device,
    )
    credentials = Credentials.load(args.auth) if args.auth else None
    # Building the app loads the default model (weights, examples): a bad one ends here too, as
    # does a port already in use (OSError), with one line instead of a traceback.
    launch(explorer, host=args.host, port=args.port, credentials=credentials)
except (ExplorerError, OSError) as error:  # one line, status 2 (as the CLI's bad input)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
