"""The Rekognition operations facegate answers, and the gate operation of each.

The mappings live in `collections_faces` (collections, faces, users) and `matching`
(searches, compare, detect); this table is what the dispatcher looks a target up in.
"""

from __future__ import annotations

from facegate.governance import Operation
from facegate.service.aws.call import Handler
from facegate.service.aws.collections_faces import (
    associate_faces, create_collection, create_user, delete_collection, delete_faces, delete_user,
    describe_collection, disassociate_faces, index_faces, list_collections, list_faces, list_users,
)
from facegate.service.aws.matching import (
    compare_faces, detect_faces, search_faces, search_faces_by_image, search_users, search_users_by_image,
)

OPERATIONS: dict[str, tuple[Handler, Operation]] = {
    "CreateCollection": (create_collection, Operation.CREATE_COLLECTION),
    "DescribeCollection": (describe_collection, Operation.LIST),
    "ListCollections": (list_collections, Operation.LIST),
    "DeleteCollection": (delete_collection, Operation.DELETE_COLLECTION),
    "IndexFaces": (index_faces, Operation.INDEX),
    "ListFaces": (list_faces, Operation.LIST),
    "DeleteFaces": (delete_faces, Operation.DELETE),
    "SearchFaces": (search_faces, Operation.SEARCH_FACE),
    "SearchFacesByImage": (search_faces_by_image, Operation.SEARCH_IMAGE),
    "CompareFaces": (compare_faces, Operation.COMPARE),
    "DetectFaces": (detect_faces, Operation.DETECT),
    "CreateUser": (create_user, Operation.CREATE_SUBJECT),
    "DeleteUser": (delete_user, Operation.DELETE),
    "ListUsers": (list_users, Operation.LIST),
    "AssociateFaces": (associate_faces, Operation.ASSOCIATE),
    "DisassociateFaces": (disassociate_faces, Operation.ASSOCIATE),
    "SearchUsers": (search_users, Operation.SEARCH_SUBJECT),
    "SearchUsersByImage": (search_users_by_image, Operation.SEARCH_IMAGE),
}
