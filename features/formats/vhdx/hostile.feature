@format:vhdx @op:info @op:read @requires:qemu-img @spec:vhdx
Feature: hostile vhdx images are refused without harm
  A header, region table, metadata item, BAT entry or log entry that cannot be right must
  be refused with an error naming it, without a crash, a hang, an unbounded allocation
  (the reference reads no region and no log that does not fit in the file) or any change
  to the file; a log is checked whole before any of it is replayed. The base image is an
  8 MiB dynamic image with 1 MiB blocks made by qemu-img, 64 KiB written at 64 KiB.
  (Field names: Microsoft's VHDX specification.)

  Scenario Outline: an image whose <defect> is refused
    Given a vhdx image whose <defect>
    When the image is opened
    Then the open is refused naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                              |
      | headers both have a bad CRC                         |
      | headers have the same sequence number but differ    |
      | log_offset is not a multiple of 1 MiB               |
      | region table has a bad CRC                          |
      | region table lists the BAT twice                    |
      | region table regions overlap                        |
      | metadata lacks the virtual disk size                |
      | block_size is 3 MiB                                 |
      | virtual disk size is 2^62 bytes                     |
      | a BAT entry points past the end of the file         |
      | a BAT entry points into the metadata region         |
      | a BAT entry points into the header section          |
      | log entry has an invalid descriptor                 |

  Scenario Outline: an image whose <defect> is refused when opened for writing
    Given a vhdx image whose <defect>
    When the image is opened for writing
    Then the open for writing is refused naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                  |
      | log entry would overwrite the headers   |
      | log entry says the file was longer      |
