"""Label Studio review of borderline clips. Coming after scoring and filters."""
