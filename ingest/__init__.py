"""Finding inputs, probing containers, decoding media and cutting videos into clips."""
