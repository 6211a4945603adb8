"""``ame ui``: ame's own web pages, on Starlette and Jinja2, calling the same library as the CLI.

``ame.ui.app`` holds the routes and ``create_app``; ``ame.ui.server`` starts
it (``ame ui``); ``ame.ui.security`` the access token and CSRF tokens;
``ame.ui.uploads`` the bounded form reading; ``ame.ui.actions`` the glue to
the registry, packaging, backends and task history. Nothing here is imported
by ``import ame``.
"""
