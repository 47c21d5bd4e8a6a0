"""One module per signal; each turns a clip into new, namespaced columns."""
