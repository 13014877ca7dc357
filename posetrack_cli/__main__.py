"""``python -m posetrack_cli`` runs the command line."""

from posetrack_cli.cli import main

if __name__ == "__main__":
    main()
