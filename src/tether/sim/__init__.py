"""The SOC simulator: drives Tether's real services on a real SQLite file in virtual time."""
