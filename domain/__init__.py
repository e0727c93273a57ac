"""Pure types, ports and model definitions: the standard library and numpy only."""
