@format:vdi @op:info @op:read @requires:qemu-img @spec:vdi
Feature: hostile vdi images are refused without harm
  A vdi header field or block map entry that cannot be right must be refused with an
  error naming it, without a crash, a hang, an unbounded allocation (the reference reads
  no block map that does not fit in the file) or any change to the file. The base image
  is an 8 MiB dynamic image made by qemu-img with two blocks written by qemu-io.
  (Field names: VirtualBox's VDI header, as QEMU's block/vdi.c names them.)

  Scenario Outline: an image whose <defect> is refused
    Given a vdi image whose <defect>
    When the image is opened
    Then the refusal names the damaged field
    And the image file is unchanged

    Examples:
      | defect                                                    |
      | signature is wrong                                        |
      | version is 2.0                                            |
      | image_type is 3                                           |
      | offset_bmap points past the end of the file               |
      | offset_bmap is not sector aligned                         |
      | offset_data is not sector aligned                         |
      | sector_size is 4096                                       |
      | disk_size is 2^50 bytes                                   |
      | disk_size is larger than the block map covers             |
      | block_size is 64 KiB                                      |
      | blocks_in_image is 2^30                                   |
      | blocks_in_image needs a block map past the end of the file |
      | parent UUID is set                                        |
      | a block map entry points past blocks_in_image             |
      | a block map entry points past the end of the file         |
      | two block map entries point at the same block             |
