"""A simulated fleet: a Mosquitto broker on a free port, bookcase configs that point at it, and the narrated demo."""
