"""``python -m flightdelay``: the same commands as the ``flightdelay`` script."""

from flightdelay.cli import app

app(prog_name="flightdelay")
