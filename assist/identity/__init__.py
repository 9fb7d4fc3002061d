"""Sign-in through what a company already runs: LDAP / Active Directory (``ldap``), OpenID Connect
(``oidc``), and the users they bring (``signin``: created on first sign-in, groups refreshed each
time). The redirect routes live in ``webui/login_oidc.py``; nothing here imports a web framework.

Importing the package is cheap: ``ldap3`` and ``authlib`` load only with the modules that use them.
"""
