"""import poseur_mm refuses OpenMMLab versions it does not support, naming the fix."""
import pytest

from poseur_mm.compat import versions as compat


def test_installed_versions_pass():
    compat.check_dependencies()  # the pinned environment must satisfy its own check


@pytest.mark.parametrize('package, found', [('mmcv', '2.2.0'), ('mmcv', '1.7.2'),
                                            ('mmengine', '1.0.0'), ('mmpose', '1.2.0')])
def test_unsupported_version_raises_with_found_required_and_fix(monkeypatch, package, found):
    real = compat.version
    monkeypatch.setattr(compat, 'version', lambda name: found if name == package else real(name))
    low, high = compat.REQUIRED_VERSIONS[package]
    with pytest.raises(ImportError) as info:
        compat.check_dependencies()
    message = str(info.value)
    assert f'{package} {found} is installed' in message
    assert f'>={low},<{high}' in message
    assert 'tools/setup_env.sh' in message


def test_missing_package_is_named(monkeypatch):
    def version(name):
        raise compat.PackageNotFoundError(name)

    monkeypatch.setattr(compat, 'version', version)
    with pytest.raises(ImportError, match='mmcv is not installed'):
        compat.check_dependencies()
