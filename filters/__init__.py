"""Pure functions from clip rows and thresholds to verdicts (accept / reject / review). Coming with scoring."""
