@format:parallels @op:info @op:read @requires:qemu-img @spec:parallels
Feature: hostile parallels images are refused without harm
  A parallels header field or BAT entry that cannot be right must be refused with an
  error naming it, without a crash, a hang, an unbounded allocation (the reference reads
  no BAT that does not fit in the file) or any change to the file. The base image is an
  8 MiB image with 64 KiB clusters made by qemu-img, three clusters written by qemu-io.
  (Field names: struct ParallelsHeader in QEMU's block/parallels.c.)

  Scenario Outline: an image whose <defect> is refused
    Given a parallels image whose <defect>
    When the image is opened
    Then the refusal names the damaged field
    And the image file is unchanged

    Examples:
      | defect                                                |
      | magic is wrong                                        |
      | version is 3                                          |
      | tracks is 0                                           |
      | tracks is 2^30                                        |
      | bat_entries is 2^30                                   |
      | bat_entries runs past the end of the file             |
      | nb_sectors is more than the BAT maps                  |
      | a BAT entry points past the end of the file           |
      | a BAT entry of an old-format image points into the BAT |
      | two BAT entries point at the same cluster             |

  @op:write
  Scenario: an image a writer never closed is refused for writing, and stays as it was
    Given a parallels image whose inuse flag is set
    When a write of the image opened read-write is attempted
    Then opening for writing is refused naming "not closed correctly"
    And the image file is unchanged
