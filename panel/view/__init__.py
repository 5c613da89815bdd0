"""`panel view`: a local web app over the run store, for editors.

`app.create_app` builds the Starlette app; `bind` decides where it listens and whether it
needs a token (importable without the `view` extra, so the command can say what is missing).
"""
