"""The default message templates (``*.j2``); a package only so that they install with the code.

Copy one into the folder named by the runbook config's ``comms.templates_dir`` (or into its
``<tenant>/`` subfolder) to change it for an installation (or a tenant).
"""
