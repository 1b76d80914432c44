"""What production runs: the Docker image, the web server's (granian's) settings, and one
launcher for every role (`python -m observatory.deploy web|worker|beat|migrate`) with the
healthchecks that docker-compose.yml uses. The multi-process system test starts the same launcher."""
