"""Static kiosk and staff console pages, served by the signaling app."""
