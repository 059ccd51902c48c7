"""Build side of the kexec tarball: runs in the Nix build (and in tests), never on a host.

elf       PT_INTERP, DT_NEEDED and RUNPATH of a binary, without ldd or readelf
trace     which modules the launcher loads, found by running its paths in the bundled Python
bundle    an interpreter bundle: loader, libraries, python, a trimmed stdlib, our code
assemble  kernel + initrd + bundle + tools + kexec/run -> a reproducible .tar.gz
"""
