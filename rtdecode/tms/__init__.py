"""TMS-evoked responses: pulse events, MEP measurement, a virtual subject and its E-field.

Modules (no torch anywhere here; the daemon imports only ``config``, ``events``, ``ring``,
``measure`` and ``plugin``):

``config``
    The ``[tms]`` config section.
``events``
    Pulses from marker streams (payload parsing, the marker inlet) and trigger channels.
``ring``, ``measure``
    The sample ring and the per-pulse MEP measurement (live and offline alike).
``plugin``
    The daemon plug-in that publishes one event message per pulse.
``offline``, ``recruitment``
    The measurement over a recording; input–output (recruitment) curves.
``efield``, ``coil``, ``subject``, ``mapping``, ``simulate``
    The analytic spherical-head E-field, the figure-8 coil, the virtual subject, the mapping
    protocol and the simulated rig (``rtdecode simulate tms``).

See docs/tms.md.
"""
