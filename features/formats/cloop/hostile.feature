@format:cloop @op:read @spec:cloop @requires:create_compressed_fs
Feature: hostile cloop images are refused without harm
  A header, offset table or block that cannot be right must be refused with an error naming
  it, without a crash, a hang, an unbounded allocation or any change to the file. The
  reference reads an offset table only if it lies inside the file (8 bytes per block), holds
  one decompressed block (at most 64 MiB, the largest block size QEMU accepts) and stops
  inflating at the block size, so a zip bomb costs no more than a block. The base image is a
  1 MiB disk in 16 KiB blocks made by create_compressed_fs, 64 KiB written at each end.

  Scenario Outline: an image whose <defect> is refused
    Given a cloop image whose <defect>
    When the whole image is read
    Then the read is refused naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                      |
      | block size is 0                             |
      | block size is 1000                          |
      | block size is 2^31                          |
      | block count is 2^32-1                       |
      | offset table ends past the end of the file  |
      | last offset points past the end of the file |
      | offsets are not increasing                  |
      | last block is longer than any block can be  |
      | a block inflates beyond the block size      |
      | a block is not zlib data                    |
      | file is 100 bytes long                      |
