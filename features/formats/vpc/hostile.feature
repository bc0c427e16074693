@format:vpc @op:info @op:read @requires:qemu-img @spec:vpc
Feature: hostile vpc images are refused without harm
  A footer, dynamic disk header or BAT entry that cannot be right must be refused with an
  error naming it, without a crash, a hang, an unbounded allocation (the reference reads
  no table that does not fit in the file) or any change to the file. The base image is
  an 8 MiB dynamic (or fixed) image made by qemu-img with 64 KiB written at 64 KiB.
  (Field names: Microsoft's VHD specification.)

  Scenario Outline: an image whose <defect> is refused
    Given a vpc image whose <defect>
    When the image is opened
    Then the open is refused naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                                  |
      | footer checksum is wrong                                |
      | cookie is wrong at both ends                            |
      | dynamic header offset points past the end of the file   |
      | dynamic header cookie is wrong                          |
      | block_size is 3000                                      |
      | max_table_entries is too small for the disk             |
      | max_table_entries is 2^31-1                             |
      | table_offset points past the end of the file            |
      | a BAT entry points past the end of the file             |
      | a BAT entry points into the dynamic header              |
      | two BAT entries point at the same block                 |
      | disk size is 2^50 bytes                                 |
      | fixed footer claims 1 TiB                               |
