"""Real local servers standing in for RDS, the EC2 host and the application tier."""
