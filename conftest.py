"""Before anything runs, the AIGATE_* variables of the developer's shell are removed, so
that neither the tests nor the tutorials' kernels (which inherit this environment under
nbval) ever see a real key or gateway: the built-in emulator answers them all."""

import os

for _name in [n for n in os.environ if n.startswith("AIGATE_")]:
    del os.environ[_name]
