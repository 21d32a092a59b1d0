"""Checks that the installed OpenMMLab packages are versions poseur_mm works with."""
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, Tuple

# package: (minimum inclusive, maximum exclusive)
REQUIRED_VERSIONS: Dict[str, Tuple[str, str]] = {
    'mmcv': ('2.0.0', '2.2.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmpose': ('1.3.0', '1.4.0'),
}


def _parse(text: str) -> Tuple[int, ...]:
    parts = []
    for part in text.split('+')[0].split('.')[:3]:
        digits = ''.join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_dependencies() -> None:
    """Raise ImportError naming every OpenMMLab package whose version does not fit.

    Raises:
        ImportError: a package is missing or outside its supported range; the message
            gives the found and the required versions and how to fix it.
    """
    problems = []
    for package, (low, high) in REQUIRED_VERSIONS.items():
        try:
            found = version(package)
        except PackageNotFoundError:
            problems.append(f'{package} is not installed (need >={low},<{high})')
            continue
        if not _parse(low) <= _parse(found) < _parse(high):
            problems.append(f'{package} {found} is installed but poseur_mm needs '
                            f'>={low},<{high}')
    if problems:
        raise ImportError('poseur_mm cannot run with these packages: ' + '; '.join(problems) +
                          '. Run tools/setup_env.sh to build the pinned environment '
                          '(requirements/lock.txt), or install the required versions.')
