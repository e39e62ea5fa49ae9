import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))   # nemo_tree, nemo_run helpers
