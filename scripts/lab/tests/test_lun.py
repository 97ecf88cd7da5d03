"""The lab's data disk as Azure presents it: the db VM's data disk carries the serial the image's
udev rule links as /dev/disk/azure/scsi1/lun0, pinned so that the disks keep their names (root
vda, data vdb, the how-to's extra disk vdc, SBD last), and the config names no data disk: hainit
takes LUN 0 or nothing, in the lab as on Azure."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import topology, vm  # noqa: E402
from test_sbd import FakeLab, section, settings  # noqa: E402

RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                     "images", "lab", "guest", "etc", "udev", "rules.d", "66-hainit-lab-azure-lun.rules")


def devices(argv):
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]


class DataDiskIsLun0(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def argv(self, stonith, leaves):
        lab = FakeLab(self.dir, settings(LAB_STONITH=stonith))
        spec = topology.specs(lab.settings)[0]
        v = vm.VM(spec, lab)
        v.dir = os.path.join(self.dir, spec.name)
        os.makedirs(v.dir, exist_ok=True)
        for leaf in leaves:
            open(os.path.join(v.dir, leaf), "wb").close()
        return v.qemu_argv()

    def test_the_data_disk_carries_the_lun0_serial_and_keeps_its_place(self):
        for stonith in ("sbd", "off"):
            devs = devices(self.argv(stonith, ["data.raw", "extra.raw"]))
            data = [d for d in devs if "drive=data" in d]
            extra = [d for d in devs if "drive=extra" in d]
            self.assertEqual(len(data), 1, devs)
            self.assertIn("serial=" + vm.LUN0_SERIAL, data[0])
            self.assertNotIn("serial=", extra[0])
            slot = lambda d: int(d.rsplit("addr=", 1)[1].split(",")[0], 16)  # noqa: E731
            self.assertLess(slot(data[0]), slot(extra[0]))
            self.assertLess(slot(extra[0]), int(vm.SBD_PCI_ADDR, 16))

    def test_the_image_rule_links_that_serial_as_lun0(self):
        with open(RULES) as f:
            rules = [line for line in f.read().splitlines() if line and not line.startswith("#")]
        disk = [r for r in rules if 'ENV{DEVTYPE}=="disk"' in r]
        self.assertEqual(len(disk), 1, rules)
        self.assertIn('ATTRS{serial}=="%s"' % vm.LUN0_SERIAL, disk[0])
        self.assertIn('SYMLINK+="disk/azure/scsi1/lun0"', disk[0])

    def test_the_config_names_no_data_disk(self):
        text = topology.config_yaml(settings(LAB_STONITH="off"), "s3cret")
        self.assertFalse(any(line.startswith("data_disk") for line in section(text, "db")), text)


if __name__ == "__main__":
    unittest.main()
