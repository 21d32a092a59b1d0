"""Refuse OpenMMLab versions poseur_mm was not built for (no upstream gap: the plugin's own
contract; MMCV's ``mmcv_minimum_version`` check covers only mmcv against mmpose)."""
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, Tuple

# package: (minimum inclusive, maximum exclusive)
REQUIRED_VERSIONS: Dict[str, Tuple[str, str]] = {
    'mmcv': ('2.0.0', '2.2.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmpose': ('1.3.0', '1.4.0'),
}


def check_dependencies() -> None:
    """Raise ImportError naming every OpenMMLab package whose version does not fit.

    Raises:
        ImportError: a package is missing or outside its supported range; the message
            gives the found and the required versions and how to fix it.
    """
    found = {}
    problems = []
    for package, (low, high) in REQUIRED_VERSIONS.items():
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            problems.append(f'{package} is not installed (need >={low},<{high})')
    if not problems:  # mmengine is importable only now
        from mmengine.utils import digit_version
        for package, (low, high) in REQUIRED_VERSIONS.items():
            if not digit_version(low) <= digit_version(found[package]) < digit_version(high):
                problems.append(f'{package} {found[package]} is installed but poseur_mm needs '
                                f'>={low},<{high}')
    if problems:
        raise ImportError('poseur_mm cannot run with these packages: ' + '; '.join(problems) +
                          '. Run tools/setup_env.sh to build the pinned environment '
                          '(requirements/lock.txt), or install the required versions.')
