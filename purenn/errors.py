"""Errors purenn raises on bad input, each saying what was wrong and how to fix it."""


class ShapeError(ValueError):
    """An input's shape does not fit the layer or loss it was given to.

    The message names the layer (its full description), the shape it expected and the one it got.
    """
