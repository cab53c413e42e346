"""torch.compile settings: the one check of a compile mode (module.compile for training, compile for sampling)."""

from difflab.errors import ConfigError

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(value, key: str) -> str | None:
    """The torch.compile mode a config value asks for: None (eager) for null / false, 'default' for true, else the
    mode named; anything else is a one-line ConfigError naming `key`."""
    if value is None or value is False:
        return None
    mode = "default" if value is True else value
    if mode not in COMPILE_MODES:
        raise ConfigError(f"{key}={value} is not valid; allowed: null (eager), true, {', '.join(COMPILE_MODES)}")
    return mode


def check_compiler(value, device: str, key: str) -> None:
    """Raise a one-line ConfigError, before any work, where `key`=value would compile for the CPU without a C++
    compiler: inductor builds CPU kernels with one (g++, or $CXX), and without it torch.compile fails at the first
    step with a long traceback. GPU kernels (Triton) need none."""
    if compile_mode(value, key) is None or device != "cpu":
        return
    try:
        from torch._inductor import config, exc
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # a torch without inductor: torch.compile says so itself
        return
    try:
        get_cpp_compiler()
    except (exc.InvalidCxxCompiler, OSError):
        names = [c for c in (config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)) if c]
        raise ConfigError(f"{key}={value} compiles CPU kernels with a C++ compiler, and none was found "
                          f"(looked for {', '.join(names) or 'g++'}); allowed: null (eager), or install g++ "
                          "(or set CXX)") from None
