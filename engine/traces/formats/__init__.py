"""One module per input format; each turns raw input into canonical spans."""
