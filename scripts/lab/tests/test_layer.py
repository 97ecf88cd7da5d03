"""The lab's layer over the Azure image (images/lab/layer.py): every file under images/lab/guest/
is in one of its listed changes, so none is left out of the image the VMs boot (a rule that is in
the repository but not in the layer fails only minutes into a lab run), and every listed file
exists."""

import os
import sys
import unittest

IMAGES_LAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "images", "lab")
sys.path.insert(0, IMAGES_LAB)

import layer  # noqa: E402


class LayerListsEveryGuestFile(unittest.TestCase):
    def test_guest_files_and_listed_changes_agree(self):
        listed = [g for c in layer.CHANGES for g in c.get("guest", [])]
        on_disk = {os.path.relpath(os.path.join(d, f), layer.GUEST)
                   for d, _, files in os.walk(layer.GUEST) for f in files}
        self.assertEqual(sorted(on_disk - set(listed)), [], "files under images/lab/guest/ no change lists")
        self.assertEqual(sorted(set(listed) - on_disk), [], "listed guest files that do not exist")
        self.assertEqual(len(listed), len(set(listed)), "a guest file listed twice")

    def test_every_change_says_why(self):
        for c in layer.CHANGES:
            self.assertTrue(c["what"].strip() and c["why"].strip(), c)


if __name__ == "__main__":
    unittest.main()
