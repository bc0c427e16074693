@format:vvfat @protocol:vvfat @spec:vvfat
Feature: Virtual FAT: a host directory presented as a FAT disk
  The manual's "Virtual FAT disk images": fat:DIRECTORY gives a read-only FAT disk of the
  directory tree, fat:floppy:DIRECTORY a floppy, and :rw: (beta) writes guest changes back.
  QEMU 7.2 (block/vvfat.c) makes a 504 MiB hard disk (1024 cylinders, 16 heads, 63 sectors per
  track) with an MBR whose one partition starts at sector 63 and holds a FAT16 volume; fat:12:
  makes it 64 cylinders (31.5 MiB) FAT12. A floppy has no MBR: 2.88 MB FAT12 by default,
  1.44 MB with fat:floppy:12:, 2.88 MB FAT16 with fat:floppy:16:. Clusters are always 16 sectors
  and the root directory has 512 entries. Every name gets a VFAT long name next to its 8.3 name.
  The image is judged by FAT's own tools (fsck.fat -n, mtools), not by the implementations.
  Two of 7.2's choices are not valid FAT, so no scenario runs fsck on them: fat:floppy:16: is
  FAT16 with 357 clusters (too few for FAT16: fsck.fat reads it as FAT12), and fat:32: keeps the
  FAT16 boot sector (type string "FAT16", 512 root entries, 64443 clusters) with 32-bit FAT
  entries, after warning "FAT32 has not been tested"; the reference lays both out the same way.
  The manual's never-do list: a non-ASCII name keeps its long name (UTF-16) in 7.2 and in the
  reference, and its short name drops the letter (a scenario below). A change to the directory
  on the host while the image is open is not checked here (no single command can make it between
  open and read): 7.2 and the reference read file data from the host file on each read, so a
  changed file shows its new bytes up to the size seen at open, and new or removed files are not
  seen (the reference's part is in test/vvfat.test.ts).
  :rw: is judged the way a guest would change the disk: mtools edits a raw copy of what the
  implementation shows (the FAT driver of this suite), the sectors that differ are written back
  through fat:rw: one write per run, and the directory must then hold exactly the tree mtools
  extracts from the edited copy. Writes to the MBR and the boot sector are refused (QEMU's
  "Tried to write to protected bootsector"). A guest-written name that is not one file name
  ("..", a separator) must not let anything be written outside the directory. QEMU 7.2 writes back
  after every write request and the reference on flush and close; 7.2's rw is marked beta in the
  manual, and the cases it does not carry out are in expectations/qemu.json.

  Scenario Outline: a tree of 200 files in nested directories, converted by the <who>, passes fsck.fat and extracts identically
    Given a vvfat directory tree of 200 files in nested directories
    When the <who> converts 'fat:{dir}' to a raw image
    Then the raw image is 528482304 bytes long
    And the raw image has its FAT volume at byte 32256
    And the raw image's FAT is FAT16 by its cluster count, with 16 sectors per cluster and the type string "FAT16"
    And the raw image passes fsck.fat -n
    And every file of the directory extracts byte-identical from the raw image with mtools

    Examples:
      | who            |
      | implementation |
      | oracle         |

  Scenario: qemu-img info names a fat: image as json: over raw, 504 MiB
    Given a vvfat directory with a file named "a.txt" of 100 bytes
    Then the implementation shows 'fat:{dir}' with format "raw", a virtual size of 528482304 bytes and the name 'json:{"driver": "raw", "file": {"fat-type": 0, "dir": "{dir}", "driver": "vvfat", "floppy": false, "rw": false}}'

  Scenario Outline: the option list <options> (--image-opts) opens a <size>-byte disk
    Given a vvfat directory with a file named "a.txt" of 100 bytes
    Then the implementation shows the option list '<options>' with format "<format>", a virtual size of <size> bytes and the name '<shown>'

    Examples:
      | options                                              | format | size      | shown                                                                              |
      | driver=vvfat,dir={dir},floppy=on,fat-type=12         | vvfat  | 1474560   | json:{"fat-type": "12", "dir": "{dir}", "driver": "vvfat", "floppy": "on"}         |
      | driver=raw,file.driver=vvfat,file.dir={dir},file.label=ABC | raw | 528482304 | json:{"driver": "raw", "file": {"dir": "{dir}", "driver": "vvfat", "label": "ABC"}} |

  @spec:vvfat.floppy
  Scenario Outline: <name> is a <size>-byte FAT<bits> floppy with no MBR
    Given a vvfat directory with a file named "floppy.dat" of 100 KiB
    When the implementation converts '<name>' to a raw image
    Then the raw image is <size> bytes long
    And the raw image has its FAT volume at byte 0
    And the raw image's FAT is FAT<bits> by its cluster count, with 16 sectors per cluster and the type string "FAT<bits>"
    And the raw image passes fsck.fat -n
    And every file of the directory extracts byte-identical from the raw image with mtools
    And the raw image's volume label is "QEMU VVFAT"

    Examples:
      | name               | size    | bits |
      | fat:floppy:{dir}   | 2949120 | 12   |
      | fat:floppy:12:{dir} | 1474560 | 12   |

  Scenario Outline: fat-type <type> on a hard disk: <size> bytes
    Given a vvfat directory with a file named "disk.dat" of 20 KiB
    Then the implementation shows '<name>' with format "raw", a virtual size of <size> bytes and the name 'json:{"driver": "raw", "file": {"fat-type": <type>, "dir": "{dir}", "driver": "vvfat", "floppy": false, "rw": false}}'

    Examples:
      | name          | type | size      |
      | fat:12:{dir}  | 12   | 33030144  |
      | fat:16:{dir}  | 16   | 528482304 |
      | fat:32:{dir}  | 32   | 528482304 |

  Scenario: fat:12: on a hard disk is a 31.5 MiB FAT12 volume behind an MBR
    Given a vvfat directory with a file named "disk.dat" of 20 KiB
    When the implementation converts 'fat:12:{dir}' to a raw image
    Then the raw image has its FAT volume at byte 32256
    And the raw image's FAT is FAT12 by its cluster count, with 16 sectors per cluster and the type string "FAT12"
    And the raw image passes fsck.fat -n
    And every file of the directory extracts byte-identical from the raw image with mtools

  Scenario Outline: the label option sets the volume label: <label>
    Given a vvfat directory with a file named "x.txt" of 10 bytes
    When the implementation converts '<name>' to a raw image
    Then the raw image's volume label is "<label>"

    Examples:
      | name                                                                | label      |
      | json:{"driver":"vvfat","dir":"{dir}","floppy":true,"label":"MYDISK"} | MYDISK     |

  Scenario: an empty directory is an empty volume that passes fsck.fat
    Given an empty vvfat directory
    When the implementation converts 'fat:floppy:{dir}' to a raw image
    Then the raw image passes fsck.fat -n
    And every file of the directory extracts byte-identical from the raw image with mtools

  Scenario: a name that is no 8.3 name gets a long-name entry and a ~1 short name
    Given a vvfat directory with a file named "A Long File Name.text" of 3000 bytes
    When the implementation converts 'fat:floppy:{dir}' to a raw image
    Then mdir lists "A Long File Name.text" in the raw image with the short name "ALONGF~1.TEX"
    And every file of the directory extracts byte-identical from the raw image with mtools

  @spec:vvfat.restrictions
  Scenario: a non-ASCII name (the manual says never) keeps its long name; its short name loses the letter
    Given a vvfat directory with a file named "café.txt" of 10 bytes
    When the implementation converts 'fat:floppy:{dir}' to a raw image
    Then mdir lists "café.txt" in the raw image with the short name "CAF~1.TXT"
    And every file of the directory extracts byte-identical from the raw image with mtools

  Scenario: a file too large for the floppy is refused, naming the FAT and its capacity
    Given a vvfat directory with a file named "big.bin" of 2 MiB
    When the implementation tries to convert 'fat:floppy:12:{dir}' to a raw image
    Then the vvfat attempt is refused with 'Directory does not fit in FAT12 (capacity 1.44 MB)'

  Scenario: an absent directory is refused, naming it
    Given an empty vvfat directory
    When the implementation tries to read the info of 'fat:{dir}/no-such-dir'
    Then the vvfat attempt is refused with 'Could not read directory {dir}/no-such-dir'

  @spec:vvfat.rw @spec:vvfat.restrictions
  Scenario: :rw: on a read-only open (what -snapshot makes of the FAT node) is refused
    Given a vvfat directory with a file named "x.txt" of 10 bytes
    When the implementation tries to read the info of 'fat:rw:{dir}'
    Then the vvfat attempt is refused with "Unable to set VVFAT to 'rw' when drive is read-only"

  @spec:vvfat.rw
  Scenario: with :rw:, a guest write to a file's cluster reaches the host file
    # a.txt is the only file, so it takes cluster 2, the first after the root directory:
    # sector 63 (the MBR's track) + 1 (boot) + 2 x 252 (the FATs) + 32 (root) = 600, byte 307200
    Given a vvfat directory with a file named "a.txt" of 4 KiB
    When the implementation writes 4 KiB of pattern 0x62 at offset 307200 of 'fat:rw:{dir}' as a raw image
    Then the host file "a.txt" of the directory holds 4 KiB of pattern 0x62

  @spec:vvfat.rw
  Scenario Outline: with :rw:, <change> made on the FAT volume reaches the directory
    Given a vvfat directory with a file named "a.txt" of 5000 bytes
    And a vvfat directory with a file named "b.bin" of 20000 bytes
    And a vvfat directory with a file named "sub/c.txt" of 6 bytes
    When the implementation converts 'fat:{dir}' to a raw image
    And the raw image is edited with mtools: "<edits>"
    And the implementation writes the changed sectors back through 'fat:rw:{dir}'
    Then nothing outside the directory was written
    And the directory holds exactly the files mtools extracts from the edited image

    Examples:
      | change                               | edits                                                                                     |
      | a new file                           | mcopy new.dat 3000                                                                        |
      | a new file with a long name          | mcopy Another-Long-Name.data 3000                                                         |
      | a new directory with a file in it    | mmd newdir; mcopy newdir/inner.dat 3000                                                   |
      | a rename to a long name              | mren a.txt Renamed-File.text                                                              |
      | a file moved into a subdirectory     | mmove a.txt sub/Moved-Here.txt                                                            |
      | a directory moved into a new one     | mmd newdir; mmove sub newdir/Moved-Sub                                                    |
      | new bytes of the same length         | mcopy a.txt 5000                                                                          |
      | a file grown                         | mcopy a.txt 9000                                                                          |
      | a file shrunk                        | mcopy b.bin 3000                                                                          |
      | a file deleted                       | mdel b.bin                                                                                |
      | a directory deleted                  | mdel sub/c.txt; mrd sub                                                                   |
      | a name freed and taken again         | mren b.bin Old-B.bin; mren a.txt b.bin                                                    |
      | all of these at once                 | mcopy new.dat 3000; mdel b.bin; mren a.txt Renamed-File.text; mmd newdir; mcopy newdir/inner.dat 3000 |

  @spec:vvfat.rw @spec:vvfat.restrictions
  Scenario Outline: with :rw:, a guest-written entry named "<name>" leaves nothing written outside the directory
    Given a vvfat directory with a file named "a.txt" of 5000 bytes
    When the implementation converts 'fat:{dir}' to a raw image
    And a file entry named "<name>" holding "escaped" is forged into the raw image's root directory
    And the implementation tries to write the changed sectors back through 'fat:rw:{dir}'
    Then nothing outside the directory was written

    Examples:
      | name                    |
      | ../escape.txt           |
      | sub/../../escape.txt    |
      | ..                      |

  @spec:vvfat.rw
  Scenario: with :rw:, a write to the boot sector is refused
    Given a vvfat directory with a file named "a.txt" of 4 KiB
    When the implementation tries to write 512 bytes of pattern 0x11 at offset 32256 of 'fat:rw:{dir}' as a raw image
    Then the vvfat attempt is refused with 'Tried to write to protected bootsector'
