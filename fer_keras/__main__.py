"""``python -m fer_keras COMMAND ...``: see :mod:`fer_keras.commands`."""
from fer_keras.commands import main

main()
