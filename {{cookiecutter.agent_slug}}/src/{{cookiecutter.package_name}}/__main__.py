"""`python -m {{ cookiecutter.package_name }} start|dev|console|download-files`: the livekit-agents command line."""

from {{ cookiecutter.package_name }}.agent import worker

if __name__ == "__main__":
    worker.run()
