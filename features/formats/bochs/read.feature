@format:bochs @op:read @op:info @spec:bochs @requires:bximage
Feature: bochs growing images are read as bximage wrote them
  The manual: QEMU reads "Bochs images of growing type", read only. bximage writes a
  growing image as a 512-byte header, a catalog of one entry per extent (4 KiB of guest
  data for a 2 MiB disk, larger extents for larger disks) and, for each allocated extent, a sector bitmap and the
  extent's data; what bximage was given becomes the guest bytes, unwritten extents and
  sectors whose bitmap bit is clear read as zeroes.

  Scenario: the guest bytes are those bximage converted, across extents and sectors
    Given a 2 MiB bochs image made by bximage from a disk written with:
      | offset  | length | pattern |
      | 0       | 65536  | 0x11    |
      | 1048576 | 102400 | 0x22    |
      | 1572864 | 512    | 0x33    |
    Then the guest bytes are those of the disk it was made from
    And these ranges read back in one open:
      | offset  | length  | pattern |
      | 4096    | 61440   | 0x11    |
      | 65536   | 983040  | zeroes  |
      | 1052672 | 20480   | 0x22    |
      | 1572864 | 512     | 0x33    |
      | 1573376 | 7680    | zeroes  |
    And the oracle reads the same guest bytes
    And the oracle reports the same info

  Scenario: an image bximage made from an empty disk reads as zeroes
    Given a 2 MiB bochs image made by bximage from an empty disk
    Then the guest bytes are those of the disk it was made from

  Scenario: the map is one data extent over the whole disk, as qemu-img shows for bochs
    Given a 1 MiB bochs image made by bximage from a disk written with:
      | offset | length | pattern |
      | 8192   | 8192   | 0x44    |
    Then the map shows 1 MiB at offset 0 as data
    And the oracle reports the same map

  Scenario: a bochs image is probed by its header
    Given a 1 MiB bochs image made by bximage from an empty disk
    When the image is renamed to "disk.img"
    And the image is probed by its bytes and name
    Then it is recognised as bochs
