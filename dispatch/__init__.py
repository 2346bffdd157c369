"""Response groups, vehicles, crews and assignments (the demo seeds groups; dispatching comes later)."""
