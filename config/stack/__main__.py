"""`python3 config/stack COMMAND`: the entry point the Makefile runs."""
import sys
from pathlib import Path

# Run as a folder, Python puts config/stack itself first on the path: the
# package's own parent goes there instead, so its modules import as stack.*.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from stack.commands import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
