"""socialav.pipelines"""
