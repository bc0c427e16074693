@format:fat @spec:vvfat
Feature: FAT file-system readers on the volumes QEMU's vvfat makes
  An implementation that knows FAT file systems rather than disk formats (mtools and fsck.fat;
  capability files.fat) is judged on the FAT disks the oracle makes from a directory with
  fat:DIR: every file must come out byte-identical, its check must find the volume clean, and a
  FAT damaged here must fail its check. The check must leave the image unchanged. Disk-format
  implementations (the reference, qemu) are not applicable: they have no file-level operations.

  Scenario Outline: a <disk> the oracle made from <count> files in nested directories: the implementation extracts them all and finds the volume clean
    Given the implementation reads FAT file systems
    And a vvfat directory tree of <count> files in nested directories
    When the oracle converts '<name>' to a raw image
    Then the implementation extracts every file of the directory byte-identical from the raw image
    And the implementation's check finds the raw image's FAT volume clean

    Examples:
      | disk                    | count | name             |
      | FAT16 hard disk         | 200   | fat:{dir}        |
      | FAT12 hard disk         | 60    | fat:12:{dir}     |

    @spec:vvfat.floppy
    Examples: floppies
      | disk                    | count | name             |
      | 2.88 MB FAT12 floppy    | 40    | fat:floppy:{dir} |
      | 1.44 MB FAT12 floppy    | 20    | fat:floppy:12:{dir} |

  Scenario Outline: a <disk> whose first FAT lost two clusters fails the implementation's check
    Given the implementation reads FAT file systems
    And a vvfat directory with a file named "a.txt" of 10000 bytes
    And a vvfat directory with a file named "b.txt" of 3 bytes
    When the oracle converts '<name>' to a raw image
    And the first FAT of the raw image marks clusters 2 and 3 free
    Then the implementation's check finds the raw image's FAT volume damaged

    Examples:
      | disk            | name             |
      | FAT16 hard disk | fat:{dir}        |
      | FAT12 floppy    | fat:floppy:{dir} |
