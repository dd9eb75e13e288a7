"""``python -m fer_keras COMMAND ...``: see :mod:`fer_keras.cli`."""
from fer_keras.cli import main

main()
