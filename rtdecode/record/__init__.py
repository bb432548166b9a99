"""Session recording: every input sample and every published frame of a daemon run, to HDF5.

``rtdecode.record.config`` (the ``[record]`` section) imports nothing heavy; the writer,
the reader, the NWB export and the report need the ``record`` / ``nwb`` extras (h5py,
pynwb, matplotlib) and are imported only where they are used. Layout: ``docs/recording.md``.
"""
