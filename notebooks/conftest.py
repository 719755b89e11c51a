"""When pytest runs these tutorials (nbval), each gets a fresh kernel that inherits this
process's environment. The AIGATE_* variables of the developer's shell are removed first,
so that the kernels use the built-in emulator, whose pictures the stored outputs show,
and never a real key.
"""

import os

for _name in [n for n in os.environ if n.startswith("AIGATE_")]:
    del os.environ[_name]
