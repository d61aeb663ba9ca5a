"""The local run: the product's two Lambdas, as the synthesized template deploys them, against an
AWS emulator (``moto.server``) and the project's GitLab API server, both on loopback.

``python -m gitlab_key_rotation_dev.demo`` (``make demo``) is the README's main command; ``tests/e2e`` runs the same
pieces. Modules: ``emulators`` (start/stop), ``deployment`` (synthesize, create the template's
resources in the emulator, resolve each function's environment and role), ``scenario`` (seed the
machine user, GitLab and the developers), ``invoke`` (call a handler as Lambda would), ``report``
(read the state back and print it, secrets never shown).
"""
