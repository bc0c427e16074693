@format:qed @op:info @op:read @requires:qemu-img @spec:qed
Feature: hostile qed images are refused without harm
  A qed header or table entry that cannot be right must be refused with an error naming
  it, without a crash, a hang, an unbounded allocation or any change to the file.
  (Field names: QEMU's docs/interop/qed_spec.txt.)

  Scenario Outline: an image whose <defect> is refused
    Given a qed image whose <defect>
    When the image is opened
    Then opening fails with an error naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                           |
      | magic is wrong                                   |
      | cluster_size is 1000                             |
      | cluster_size is 128 MiB                          |
      | table_size is 32                                 |
      | image_size is 2^62 bytes                         |
      | image_size is not a multiple of 512              |
      | l1_table_offset points past the end of the file  |
      | l1_table_offset is not cluster aligned           |
      | l1_table_offset overlaps the header              |
      | header_size is 2^20 clusters                     |
      | features has an unknown bit                      |
      | L1 entry points past the end of the file         |
      | L2 entry points past the end of the file         |
      | backing file names the image itself              |
