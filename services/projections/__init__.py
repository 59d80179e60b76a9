"""Projections (查询统计): the read side that dashboards use, built only from the streams."""
